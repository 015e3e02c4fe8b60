// Host-emulation build of ../conv2d_bwd_data.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../conv2d_bwd_data.cu"
