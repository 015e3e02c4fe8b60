// Adam without ISA flags (the scalar path): optim.inl.
#include "../simd/portable.h"
#include "optim.inl"
