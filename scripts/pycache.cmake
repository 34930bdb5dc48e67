# Compiles the Python files of DIR to bytecode for each Python in PYTHONS
# (separated by "|"), as `python -m compileall` does. A Python that cannot
# is passed over: it compiles the files when it loads them, as it would
# without this. With DDIR, the bytecode names the files as loaded from
# there (an install: the directory without DESTDIR).
#   cmake -DPYTHONS=/usr/bin/python3 -DDIR=python [-DDDIR=...] -P scripts/pycache.cmake
string(REPLACE "|" ";" pythons "${PYTHONS}")
set(named "")
if(DDIR)
  set(named -d "${DDIR}")
endif()
foreach(py IN LISTS pythons)
  execute_process(COMMAND "${py}" -m compileall -q ${named} "${DIR}" OUTPUT_QUIET ERROR_QUIET)
endforeach()
