# AX_CXX_STD_20: make sure the C++ compiler builds C++20 with coroutines
AC_DEFUN([AX_CXX_STD_20], [
  AC_MSG_CHECKING([whether $CXX supports C++20 coroutines])
  save_CXXFLAGS=$CXXFLAGS
  CXXFLAGS="$CXXFLAGS -std=c++20"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <coroutine>
#include <concepts>]], [[std::suspend_always s; (void)s;]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no]); AC_MSG_ERROR([a C++20 compiler with coroutines is needed: install g++ 12 (Debian package g++)])])
  CXXFLAGS=$save_CXXFLAGS
  CXXFLAGS="$CXXFLAGS -std=c++20"
])
