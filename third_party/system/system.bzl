"""Repository rules for libraries that are already installed on the machine.

`system_repository` lays out BUILD files (from this folder) in a repository of their own, so
that targets keep their conventional labels (`@com_google_absl//absl/status:statusor`) while the
headers come from /usr/include and the libraries from the linker's default path. It checks
nothing itself: a missing package shows up as a missing header or library at build time, and
`./bazelw` installs the packages before Bazel runs.

`shim_repository` does the same for small hand-written repositories (the rules_cc shim).
"""

def _write_files(ctx, files):
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    for label, dest in files.items():
        ctx.symlink(ctx.path(label), dest)

def _system_repository_impl(ctx):
    _write_files(ctx, ctx.attr.build_files)

system_repository = repository_rule(
    implementation = _system_repository_impl,
    attrs = {"build_files": attr.label_keyed_string_dict(mandatory = True, allow_files = True)},
    doc = "BUILD files over a library installed in the system's default paths.",
)

def _shim_repository_impl(ctx):
    _write_files(ctx, ctx.attr.files)

shim_repository = repository_rule(
    implementation = _shim_repository_impl,
    attrs = {"files": attr.label_keyed_string_dict(mandatory = True, allow_files = True)},
    doc = "A small repository made of files kept in this one.",
)
