// The compression probe of tools/gpu/gpu_check.py: one small kernel, built by nvcc with each
// -compress-mode and as machine code or PTX only, loaded the way the CUDA plugin is (a shared
// library beside the CUDA runtime of the nvidia-* wheels, preloaded RTLD_GLOBAL). probe() runs
// the kernel and checks its result: 0 when it ran, else the CUDA error code.
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

__global__ void saxpy(int n, float a, const float * x, float * y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

extern "C" int probe(char * message, int size) {
    const int n = 1 << 20;
    std::vector<float> hx(n, 1.0f), hy(n, 2.0f);
    float *x = nullptr, *y = nullptr;
    cudaError_t err = cudaMalloc(&x, n * sizeof(float));
    if (err == cudaSuccess) err = cudaMalloc(&y, n * sizeof(float));
    if (err == cudaSuccess) err = cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(y, hy.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    if (err == cudaSuccess) {
        saxpy<<<(n + 255) / 256, 256>>>(n, 3.0f, x, y);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaMemcpy(hy.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost);
    int wrong = 0;
    if (err == cudaSuccess) {
        for (int i = 0; i < n; i++) wrong += hy[i] != 5.0f;
    }
    std::snprintf(message, size, "%s%s", cudaGetErrorString(err),
                  err == cudaSuccess && wrong ? " but the result is wrong" : "");
    cudaFree(x);
    cudaFree(y);
    return err != cudaSuccess ? int(err) : (wrong ? -1 : 0);
}
