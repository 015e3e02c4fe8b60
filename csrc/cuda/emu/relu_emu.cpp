// Host-emulation build of ../relu.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../relu.cu"
