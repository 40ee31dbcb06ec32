# CUDA backend: Hopper only (sm_90). Files that use wgmma (*_sm90a.cu) are built with
# -gencode=arch=compute_90a,code=sm_90a alone (imp_cuda_sm90a below).
# The architecture is set before enable_language: otherwise CMake caches nvcc's own
# default (sm_75 for nvcc 13), the kernels are built as compute_75 PTX and JIT-compiled on
# the GPU, and sm_80+/sm_89+ instructions (mma.sync f16, cvt e4m3x2) are unavailable or
# emulated. A build dir configured with another value is corrected here too.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES MATCHES "^(52|75)$")
  set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (imp targets Hopper)" FORCE)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
file(GLOB_RECURSE IMP_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backends/cuda/*.cu
                                                     ${CMAKE_SOURCE_DIR}/src/backends/cuda/*.cc)
# wgmma kernels (*_sm90a.cu): their own object library with only the sm_90a target — the
# plain sm_90 pass that CMAKE_CUDA_ARCHITECTURES adds would reject wgmma.
file(GLOB IMP_CUDA_SM90A_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backends/cuda/*_sm90a.cu)
list(REMOVE_ITEM IMP_CUDA_SOURCES ${IMP_CUDA_SM90A_SOURCES})
add_library(imp_cuda_sm90a OBJECT ${IMP_CUDA_SM90A_SOURCES})
set_target_properties(imp_cuda_sm90a PROPERTIES CUDA_ARCHITECTURES OFF)
target_include_directories(imp_cuda_sm90a PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(imp_cuda_sm90a PRIVATE imp_core CUDA::cudart)
target_compile_definitions(imp_cuda_sm90a PRIVATE IMP_HAVE_CUDA=1)
target_compile_options(imp_cuda_sm90a PRIVATE
                       $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -lineinfo>)
add_library(imp_cuda STATIC ${IMP_CUDA_SOURCES} $<TARGET_OBJECTS:imp_cuda_sm90a>)
target_include_directories(imp_cuda PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(imp_cuda PUBLIC imp_core CUDA::cudart CUDA::cublas CUDA::cublasLt)
target_compile_definitions(imp_cuda PUBLIC IMP_HAVE_CUDA=1)
# CUPTI (`imp bench --trace-kernels`): only its headers at build time; libcupti itself is
# dlopen'ed when a trace is asked for (backends/cuda/cupti_tracer.cc).
find_path(IMP_CUPTI_INCLUDE_DIR cupti.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/extras/CUPTI/include
          ${CUDAToolkit_TARGET_DIR}/extras/CUPTI/include)
if(IMP_CUPTI_INCLUDE_DIR)
  target_include_directories(imp_cuda PRIVATE ${IMP_CUPTI_INCLUDE_DIR})
  target_compile_definitions(imp_cuda PRIVATE IMP_HAVE_CUPTI_HEADERS=1)
endif()
target_link_libraries(imp_cuda PRIVATE ${CMAKE_DL_LIBS})
target_compile_options(imp_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
