// Catch2 entry point for knot_tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
