// doctest's main(): the one translation unit that instantiates the framework.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
