// CUDA decode: three launches for the whole batch and every level (count, scan, write); the only
// memory it needs is a workspace of (blocks per image + 1) ints per image, sized up front. Output
// order is the anchor order, by prefix sums: deterministic, no atomics. No host synchronization,
// so it can be captured in a CUDA graph.
#include <cuda_fp16.h>

#include "yoloDecode.h"

namespace trtdeploy {
namespace yolo {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

struct Reader {
  const DecodeParams& p;
  __device__ float operator()(int l, int b, int channel, int cell) const {
    const size_t hw = static_cast<size_t>(p.grid_h[l]) * p.grid_w[l];
    const size_t idx = (static_cast<size_t>(b) * p.num_anchors * (p.num_classes + 5) + channel) * hw + cell;
    return p.fp16 ? __half2float(__ldg(static_cast<const __half*>(p.inputs[l]) + idx))
                  : __ldg(static_cast<const float*>(p.inputs[l]) + idx);
  }
};

int blocks_per_image(int total) { return (total + kThreads - 1) / kThreads; }

// counts[b * (nblocks + 1) + blk] = kept anchors in block blk of image b
__global__ void count_kernel(const DecodeParams p, int* counts, int nblocks) {
  const int b = blockIdx.y;
  const int t = blockIdx.x * kThreads + threadIdx.x;
  Detection d;
  const bool keep = t < p.total_anchors() && decode_anchor(p, b, t, Reader{p}, &d);
  const int n = __syncthreads_count(keep);
  if (threadIdx.x == 0) counts[b * (nblocks + 1) + blockIdx.x] = n;
}

// In place: counts -> exclusive offsets; the image total goes to slot nblocks and num_detections.
__global__ void scan_kernel(int* counts, int nblocks, int max_det, int32_t* num_detections) {
  __shared__ int partial[kThreads];
  int* c = counts + blockIdx.x * (nblocks + 1);
  const int per = (nblocks + kThreads - 1) / kThreads;
  const int lo = min(threadIdx.x * per, nblocks), hi = min(lo + per, nblocks);
  int sum = 0;
  for (int i = lo; i < hi; ++i) sum += c[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int off = 1; off < kThreads; off <<= 1) {  // inclusive Hillis-Steele scan
    int v = threadIdx.x >= off ? partial[threadIdx.x - off] : 0;
    __syncthreads();
    partial[threadIdx.x] += v;
    __syncthreads();
  }
  int run = partial[threadIdx.x] - sum;  // exclusive prefix of this thread's chunk
  for (int i = lo; i < hi; ++i) {
    const int v = c[i];
    c[i] = run;
    run += v;
  }
  if (threadIdx.x == kThreads - 1) {
    c[nblocks] = partial[kThreads - 1];
    num_detections[blockIdx.x] = min(partial[kThreads - 1], max_det);
  }
}

__global__ void write_kernel(const DecodeParams p, const int* offsets, int nblocks, float* boxes, float* scores,
                             int32_t* classes) {
  __shared__ int warp_base[kWarps];
  const int b = blockIdx.y;
  const int t = blockIdx.x * kThreads + threadIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  Detection d;
  const bool keep = t < p.total_anchors() && decode_anchor(p, b, t, Reader{p}, &d);
  const unsigned mask = __ballot_sync(0xFFFFFFFFu, keep);
  if (lane == 0) warp_base[warp] = __popc(mask);
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int w = 0; w < kWarps; ++w) {
      const int v = warp_base[w];
      warp_base[w] = run;
      run += v;
    }
  }
  __syncthreads();
  const int* off = offsets + b * (nblocks + 1);
  const int kept = min(off[nblocks], p.max_detections);
  const size_t row0 = static_cast<size_t>(b) * p.max_detections;
  if (keep) {
    const int pos = off[blockIdx.x] + warp_base[warp] + __popc(mask & ((1u << lane) - 1u));
    if (pos < p.max_detections) {
      reinterpret_cast<float4*>(boxes)[row0 + pos] = make_float4(d.x1, d.y1, d.x2, d.y2);
      scores[row0 + pos] = d.score;
      classes[row0 + pos] = d.cls;
    }
  }
  if (t >= kept && t < p.max_detections) {  // zero the unused rows (only those)
    reinterpret_cast<float4*>(boxes)[row0 + t] = make_float4(0.f, 0.f, 0.f, 0.f);
    scores[row0 + t] = 0.f;
    classes[row0 + t] = 0;
  }
}

}  // namespace

size_t decode_workspace_size(int batch, int total_anchors) {
  return sizeof(int) * static_cast<size_t>(batch) * (blocks_per_image(total_anchors) + 1);
}

int decode_cuda(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                void* workspace, cudaStream_t stream) {
  const int total = p.total_anchors();
  if (p.batch == 0 || total == 0) return 0;
  const int nblocks = blocks_per_image(total);
  int* counts = static_cast<int*>(workspace);
  const dim3 grid(nblocks, p.batch);
  count_kernel<<<grid, kThreads, 0, stream>>>(p, counts, nblocks);
  scan_kernel<<<p.batch, kThreads, 0, stream>>>(counts, nblocks, p.max_detections, num_detections);
  write_kernel<<<grid, kThreads, 0, stream>>>(p, counts, nblocks, boxes, scores, classes);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace yolo
}  // namespace trtdeploy
