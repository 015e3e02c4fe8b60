// fastconv._cpu's process-wide switches and probes: the output cache and scratch memory, threads,
// Winograd, the ISA, the last conv2d algorithm, and the benchmark's machine probes (the kernels
// are bound by cpu_module.cpp).
#include "cpu_runtime.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "../bench/peak_flops.h"
#include "../cpu/conv2d/algorithm.h"
#include "../cpu/conv2d/winograd.h"
#include "../cpu/runtime/output_cache.h"
#include "../cpu/runtime/runtime.h"
#include "../cpu/runtime/scratch.h"
#include "../cpu/runtime/thread_pool.h"

namespace py = pybind11;

namespace fastconv {

void bind_runtime(py::module_& m) {
  m.def(
      "cached_empty",
      [](const std::vector<int64_t>& shape, const py::dtype& dt) {
        size_t bytes = static_cast<size_t>(dt.itemsize());
        for (int64_t d : shape) {
          if (d < 0) throw std::invalid_argument("cached_empty: negative dimension");
          bytes *= static_cast<size_t>(d);
        }
        void* p = output_cache_take(bytes > 0 ? bytes : 1);
        py::capsule owner(p, [](void* q) { output_cache_give(q); });
        return py::array(dt, shape, p, owner);
      },
      "uninitialized C-contiguous array whose memory comes from the output cache (output_cache.h)");
  m.attr("output_cache_min_bytes") = py::int_(kOutputCacheMinBytes);  // smaller outputs: np.empty
  m.def("output_cache_set_limit", [](size_t bytes) { output_cache_set_limit(bytes); });
  m.def("output_cache_limit", &output_cache_limit);
  m.def("output_cache_free_bytes", &output_cache_free_bytes);
  m.def("output_cache_used_bytes", &output_cache_used_bytes);
  m.def("output_cache_clear", &output_cache_clear);
  m.def("scratch_set_limit", [](size_t bytes) {
    py::gil_scoped_release release;  // trims every thread: may wait for a running kernel
    set_scratch_limit(bytes);
  });
  m.def("scratch_limit", &scratch_limit);
  m.def("scratch_bytes_held", &scratch_bytes_held);
  m.def("scratch_threads", &scratch_threads);
  m.def("scratch_release", [] {
    py::gil_scoped_release release;  // may wait for a kernel running on another Python thread
    release_all_scratch();
  });
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("n: the thread count must be >= 1, got " + std::to_string(n));
    set_num_threads(n);
  });
  m.def("get_num_threads", &num_threads);
  m.def("max_threads", [] { return kMaxThreads; });
  m.def("set_spin_us", [](int us) {
    if (us < 0) throw std::invalid_argument("us: the spin time must be >= 0, got " + std::to_string(us));
    pool::set_spin_us(us);
  });
  m.def("get_spin_us", &pool::spin_us);
  m.def("min_parallel_work", &min_parallel_work,
        "kernels doing less work (multiply-adds or element visits) run on the calling thread");
  m.def("set_min_parallel_work", &set_min_parallel_work,
        "for tests: let small problems use the threads too (default kMinParallelWork)");
  m.def("pool_workers", &pool::workers_started, "worker threads the CPU thread pool has started");
  m.def("pool_last_team_threads", &pool::last_team_threads,
        "threads (caller included) that ran the last multithreaded kernel region (tests)");
  m.def("set_winograd", [](bool on) { set_winograd_enabled(on); });
  m.def("get_winograd", &winograd_enabled);
  m.def(
      "_set_winograd_forced", [](bool on) { set_winograd_forced(on); },
      "testing aid: Winograd for every 3x3 stride-1 dilation-1 pass (float32 and float64), ignoring the size rule");
  m.def("_get_winograd_forced", &winograd_forced);
  m.def(
      "last_conv2d_algorithm",
      [](const std::string& pass) {
        ConvPass p;
        if (!parse_conv_pass(pass.c_str(), &p))
          throw std::invalid_argument("pass: expected 'fwd', 'bwd_data' or 'bwd_weight', got '" + pass + "'");
        return std::string(algorithm_name(last_algorithm(p)));
      },
      "algorithm of the last CPU conv2d pass of this kind on this thread: reference, direct, "
      "winograd_f4x4_3x3, stride_phase, small_channels (none before the first)");
  m.def("cpu_isa", [] { return std::string(isa_name(current_isa())); });
  m.def("best_cpu_isa", [] { return std::string(isa_name(best_supported_isa())); });
  m.def("set_cpu_isa", [](const std::string& name) {
    Isa requested;
    if (!parse_isa(name, &requested))
      throw std::invalid_argument("isa: expected 'avx512', 'avx2' or 'scalar', got '" + name + "'");
    return std::string(isa_name(set_isa(requested)));
  });
  // Machine probes for python -m fastconv.bench (csrc/bench/peak_flops.cpp).
  m.def("fma_peak_gflops", [](const std::string& isa, int threads, int64_t iters) {
    Isa i;
    if (!parse_isa(isa, &i)) throw std::invalid_argument("isa: expected 'avx512' or 'avx2'");
    if (threads < 1 || iters < 1) throw std::invalid_argument("threads and iters must be >= 1");
    probe::PeakResult r;
    {
      py::gil_scoped_release release;
      r = probe::fma_peak_gflops(i, threads, iters);
    }
    return py::make_tuple(r.wall_gflops, r.cpu_gflops);  // (wall-time rate, CPU-time rate)
  });
  m.def("copy_gbps", [](int64_t bytes, int threads, bool streaming, int repeats) {
    if (threads < 1 || repeats < 1 || bytes < 4096) throw std::invalid_argument("copy_gbps: bad arguments");
    py::gil_scoped_release release;
    return probe::copy_gbps(bytes, threads, streaming, repeats);
  });
}

}  // namespace fastconv
