//! Benchmarks live in `benches/` (criterion) and `src/bin/` (the producer scale driver and the raw sender);
//! this library holds what the binaries share.

/// User plus system CPU time of this process, from `/proc/self/stat` (clock ticks of 1/100 s, Linux's
/// USER_HZ); zero where that file does not exist.
pub fn process_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}
