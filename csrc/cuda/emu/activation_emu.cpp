// Host-emulation build of ../activation.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../activation.cu"
