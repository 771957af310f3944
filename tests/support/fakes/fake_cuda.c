/* A stand-in libcuda.so.1 (the WSL CUDA library under GPU-PV) for discovery tests. */
#include <stddef.h>
#include <stdio.h>

int cuInit(unsigned int flags) { (void)flags; return 0; }
int cuDriverGetVersion(int *version) { *version = 12040; return 0; }
int cuDeviceGetCount(int *count) { *count = 1; return 0; }
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
