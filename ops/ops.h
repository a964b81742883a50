// All differentiable ops. Each family has its own header and source file; every op checks its
// inputs (naming the op and the shapes), calls a device kernel from kernels/, and records its
// backward with attach_grad. See docs/architecture.md for how a call flows.
#pragma once

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/linalg.h"
#include "ops/nn_functional.h"
#include "ops/reduce.h"
#include "ops/views.h"
