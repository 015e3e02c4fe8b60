// The portable build of a family's .inl body: included before the body by the family's ref.cpp,
// which is compiled without ISA flags (the `scalar` path). The body then opens namespace ref.
#pragma once

#define FASTCONV_SIMD_NS ref
#define FASTCONV_SIMD_NAME "scalar"
