# Sourced by the bench scripts: prints the machine, compiler, commit and load lines that go
# beside every recorded figure. Needs `$load_before` (from /proc/loadavg at the start).
print_machine() {
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
    echo "rustc:   $(rustc --version)"
    echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
    echo "load:    $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min)"
}
