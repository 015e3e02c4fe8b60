// The launch bookkeeping of kernels.h: the name of the last kernel launched on this thread (for
// error messages and tests) and the largest launch the launchers make before splitting a batch.
#include "common.cuh"
#include "kernels.h"

namespace fastconv {
namespace cuda {

const std::string& last_kernel() { return g_last_kernel; }
void clear_last_kernel() { g_last_kernel.clear(); }
void set_max_launch_elements(int64_t n) { g_max_launch_elements = n < 1 ? 1 : n; }
int64_t max_launch_elements() { return g_max_launch_elements; }

}  // namespace cuda
}  // namespace fastconv
