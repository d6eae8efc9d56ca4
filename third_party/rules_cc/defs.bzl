"""An offline stand-in for @rules_cc's cc/defs.bzl that re-exports Bazel's native C++ rules.

Bazel 4.2.3 wants to download @rules_cc; Debian's bazel-rules-cc is too new for it (it loads
`use_cpp_toolchain`, which 4.2.3's @bazel_tools lacks). The native rules are what rules_cc wraps.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
