/* A stand-in libnvidia-ml.so.1 for discovery tests: real dlopen, real pynvml, scripted answers.
 * Build with one of -DMODE_OK, -DMODE_PARTIAL (GPU-PV-like: no UUID or memory),
 * -DMODE_MISMATCH (driver/library version mismatch), -DMODE_NOPERM (device nodes not
 * accessible to this user), -DMODE_HANG, -DMODE_CRASH, -DMODE_CUDA13 (an R580 driver and an
 * Ampere GPU: what the module's CUDA 13 runs on), -DMODE_PASCAL (an R580 driver and a Pascal
 * GPU, which CUDA 13 no longer supports). Without CUDA13/PASCAL: an R550 driver (CUDA 12.4). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define OK 0
#define NOT_SUPPORTED 3
#define NO_PERMISSION 4
#define LIB_RM_VERSION_MISMATCH 18

typedef struct { unsigned long long total, free, used; } memory_t;

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
#if defined(MODE_HANG)
    for (;;) pause();
#elif defined(MODE_CRASH)
    raise(SIGSEGV);
#elif defined(MODE_MISMATCH)
    return LIB_RM_VERSION_MISMATCH;
#elif defined(MODE_NOPERM)
    return NO_PERMISSION;
#endif
    return OK;
}
int nvmlShutdown(void) { return OK; }
const char *nvmlErrorString(int result) {
    switch (result) {
    case NOT_SUPPORTED: return "Not Supported";
    case NO_PERMISSION: return "Insufficient Permissions";
    case LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
    }
}
#if defined(MODE_CUDA13) || defined(MODE_PASCAL)
#define DRIVER "580.95.05"
#define CUDA_VERSION 13000
#else
#define DRIVER "550.54.15"
#define CUDA_VERSION 12040
#endif
int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    snprintf(version, length, "%s", DRIVER);
    return OK;
}
int nvmlSystemGetCudaDriverVersion(int *version) { *version = CUDA_VERSION; return OK; }
int nvmlDeviceGetCount_v2(unsigned int *count) { *count = 1; return OK; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    *device = (void *)(unsigned long)(index + 1);
    return OK;
}
int nvmlDeviceGetName(void *device, char *name, unsigned int length) {
    (void)device;
#if defined(MODE_PARTIAL)
    snprintf(name, length, "%s", "NVIDIA GeForce RTX 4070");
#elif defined(MODE_CUDA13)
    snprintf(name, length, "%s", "NVIDIA A2");
#elif defined(MODE_PASCAL)
    snprintf(name, length, "%s", "Tesla P4");
#else
    snprintf(name, length, "%s", "Tesla T4");
#endif
    return OK;
}
int nvmlDeviceGetUUID(void *device, char *uuid, unsigned int length) {
    (void)device;
#ifdef MODE_PARTIAL
    (void)uuid; (void)length;
    return NOT_SUPPORTED;
#else
    snprintf(uuid, length, "%s", "GPU-8a1b2c3d-0000-1111-2222-333344445555");
    return OK;
#endif
}
int nvmlDeviceGetMemoryInfo(void *device, memory_t *memory) {
    (void)device;
#ifdef MODE_PARTIAL
    (void)memory;
    return NOT_SUPPORTED;
#else
    memory->total = 16ULL << 30;
    memory->free = 15ULL << 30;
    memory->used = 1ULL << 30;
    return OK;
#endif
}
int nvmlDeviceGetCudaComputeCapability(void *device, int *major, int *minor) {
    (void)device;
#if defined(MODE_PARTIAL)
    *major = 8; *minor = 9;
#elif defined(MODE_CUDA13)
    *major = 8; *minor = 6;
#elif defined(MODE_PASCAL)
    *major = 6; *minor = 1;
#else
    *major = 7; *minor = 5;
#endif
    return OK;
}

/* Telemetry read by the metrics snapshots; GPU-PV cannot report utilisation. */
typedef struct { unsigned int gpu, memory; } utilization_t;
int nvmlDeviceGetUtilizationRates(void *device, utilization_t *utilization) {
    (void)device;
#ifdef MODE_PARTIAL
    (void)utilization;
    return NOT_SUPPORTED;
#else
    utilization->gpu = 87;
    utilization->memory = 40;
    return OK;
#endif
}
int nvmlDeviceGetTemperature(void *device, int sensor, unsigned int *temperature) {
    (void)device; (void)sensor;
    *temperature = 61;
    return OK;
}
int nvmlDeviceGetPowerUsage(void *device, unsigned int *milliwatts) {
    (void)device;
    *milliwatts = 51250;
    return OK;
}
