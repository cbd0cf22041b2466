# Finds the Python the package is built for and pybind11 (Debian's pybind11-dev), to set
# MCLIP_PYTHON_FOUND, the default of MCLIP_BUILD_PYTHON. Debian's python3-numpy, python3-pil and
# python3-pytest serve /usr/bin/python3, so that interpreter is preferred over whichever python3
# comes first on PATH (pyenv, a virtual environment); -DPython3_EXECUTABLE=... picks another.
set(MCLIP_PYTHON_FOUND OFF)
if(MCLIP_TOP_LEVEL OR MCLIP_BUILD_PYTHON)
  if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(Python3_EXECUTABLE /usr/bin/python3)
  endif()
  find_package(Python3 3.8 COMPONENTS Interpreter Development.Module)
  if(Python3_FOUND)
    find_package(pybind11 2.6 CONFIG QUIET)
    set(MCLIP_PYTHON_FOUND ${pybind11_FOUND})
  endif()
endif()
