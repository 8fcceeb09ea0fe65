//! `rmq bench produce --plot FILE.svg`: throughput and latency over time as a standalone SVG (no
//! dependency: two panels of polylines with axes and labels).

use std::fmt::Write as _;

/// One second of a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Seconds since the measured phase began (end of this second).
    pub(crate) t: f64,
    /// Sends completed per second.
    pub(crate) tps: f64,
    /// Median latency (ms).
    pub(crate) p50: f64,
    /// 99th percentile latency (ms).
    pub(crate) p99: f64,
}

const W: f64 = 760.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;

/// A panel at `top` plotting `series` (name, colour, values) against `t`, with its y label.
fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    unit: &str,
    t: &[f64],
    series: &[(&str, &str, Vec<f64>)],
) {
    let t_max = t.iter().copied().fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let (x0, y0, w, h) = (LEFT, top + 24.0, W - LEFT - RIGHT, PANEL - 54.0);
    let x = |v: f64| x0 + v / t_max * w;
    let y = |v: f64| y0 + h - v / y_max * h;
    let _ = write!(
        svg,
        r##"<text x="{x0}" y="{}" font-size="13" font-weight="bold">{title}</text>"##,
        top + 14.0
    );
    let _ = write!(
        svg,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text><line x1="{x0}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>"##,
            x0 - 4.0,
            y(v) + 3.0,
            if y_max >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            },
            x0 + w,
            y(v),
            y(v)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{t_max:.0} s</text><text x="12" y="{}" font-size="10" transform="rotate(-90 12 {})">{unit}</text>"##,
        x0 + w,
        y0 + h + 14.0,
        y0 + h / 2.0,
        y0 + h / 2.0
    );
    for (i, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = t
            .iter()
            .zip(values)
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" font-size="11" fill="{colour}">{name}</text>"##,
            points.join(" "),
            x0 + 8.0 + 70.0 * i as f64,
            y0 + 14.0
        );
    }
}

/// The chart of `samples`, titled `title`.
pub(crate) fn svg(title: &str, samples: &[Sample]) -> String {
    let t: Vec<f64> = samples.iter().map(|s| s.t).collect();
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="18" font-size="14">{}</text>"##,
        2.0 * PANEL + 30.0,
        escape(title)
    );
    panel(
        &mut svg,
        30.0,
        "Throughput",
        "sends / s",
        &t,
        &[("TPS", "#1f77b4", samples.iter().map(|s| s.tps).collect())],
    );
    panel(
        &mut svg,
        30.0 + PANEL,
        "Latency",
        "ms",
        &t,
        &[
            ("p50", "#2ca02c", samples.iter().map(|s| s.p50).collect()),
            ("p99", "#d62728", samples.iter().map(|s| s.p99).collect()),
        ],
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_both_panels_and_every_sample() {
        let samples: Vec<Sample> = (1..=5)
            .map(|i| Sample {
                t: f64::from(i),
                tps: 1000.0 * f64::from(i),
                p50: 1.0,
                p99: 2.5,
            })
            .collect();
        let s = svg("rmq <bench>", &samples);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 3);
        assert!(s.contains("rmq &lt;bench&gt;"));
        let tps_line = s.split("<polyline").nth(1).unwrap();
        assert_eq!(
            tps_line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .split(' ')
                .count(),
            5
        );
    }
}
