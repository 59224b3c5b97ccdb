"""Kernel code generation: graphc's LLVM math library and the host JIT helper."""
