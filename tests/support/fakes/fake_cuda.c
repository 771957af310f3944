/* A stand-in libcuda.so.1: the WSL CUDA library under GPU-PV for discovery tests, and, built with
 * -DMODE_NODEVICE, the driver of a machine with no GPU for the real CUDA execution provider
 * (cuInit answers CUDA_ERROR_NO_DEVICE; the CUDA runtime finds every entry point through
 * cuGetProcAddress, as with a real driver). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define CUDA_ERROR_NO_DEVICE 100

int cuInit(unsigned int flags) {
    (void)flags;
#ifdef MODE_NODEVICE
    return CUDA_ERROR_NO_DEVICE;
#else
    return 0;
#endif
}
#ifdef MODE_NODEVICE
int cuDriverGetVersion(int *version) { *version = 13000; return 0; }
#else
int cuDriverGetVersion(int *version) { *version = 12040; return 0; }
#endif
#ifdef MODE_NODEVICE
int cuDeviceGetCount(int *count) { *count = 0; return CUDA_ERROR_NO_DEVICE; }
#else
int cuDeviceGetCount(int *count) { *count = 1; return 0; }
#endif
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
int cuDeviceGetName(char *name, int length, int device) {
    (void)device;
    snprintf(name, (size_t)length, "%s", "NVIDIA GeForce RTX 4070");
    return 0;
}
int cuDeviceTotalMem_v2(size_t *bytes, int device) { (void)device; *bytes = (size_t)12 << 30; return 0; }
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    (void)device;
    if (attribute == 75) { *value = 8; return 0; }
    if (attribute == 76) { *value = 9; return 0; }
    return 1;
}
int cuDevicePrimaryCtxRetain(void **ctx, int device) { (void)device; *ctx = (void *)1; return 0; }
int cuCtxSetCurrent(void *ctx) { (void)ctx; return 0; }
int cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = (size_t)10 << 30;
    *total_bytes = (size_t)12 << 30;
    return 0;
}

int cuGetErrorString(int error, const char **text) {
    *text = error == CUDA_ERROR_NO_DEVICE ? "no CUDA-capable device is detected" : "unknown error";
    return 0;
}
int cuGetErrorName(int error, const char **text) {
    *text = error == CUDA_ERROR_NO_DEVICE ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
    return 0;
}
/* The CUDA provider links this driver entry point; it is never reached without a device. */
int cuTensorMapEncodeTiled(void) { return CUDA_ERROR_NO_DEVICE; }
static int no_device(void) { return CUDA_ERROR_NO_DEVICE; }

int cuGetProcAddress_v2(const char *symbol, void **function, int version, unsigned long long flags, int *status) {
    (void)version; (void)flags;
    if (status) *status = 0;
    if (!strcmp(symbol, "cuInit")) *function = (void *)cuInit;
    else if (!strcmp(symbol, "cuDriverGetVersion")) *function = (void *)cuDriverGetVersion;
    else if (!strcmp(symbol, "cuGetErrorString")) *function = (void *)cuGetErrorString;
    else if (!strcmp(symbol, "cuGetErrorName")) *function = (void *)cuGetErrorName;
    else if (!strcmp(symbol, "cuDeviceGetCount")) *function = (void *)cuDeviceGetCount;
    else *function = (void *)no_device;
    return 0;
}
int cuGetProcAddress(const char *symbol, void **function, int version, unsigned long long flags) {
    return cuGetProcAddress_v2(symbol, function, version, flags, NULL);
}
