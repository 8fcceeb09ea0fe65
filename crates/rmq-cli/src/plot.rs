//! `rmq bench produce --plot FILE.svg`: throughput and latency over time as a standalone SVG (no
//! dependency: two panels of polylines with axes and labels). Axes tick at round values, steps of 1, 2
//! or 5 times a power of ten, as plotting libraries do; the time axis is labelled in seconds.

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

/// Round ticks from 0 covering `max`: the smallest step of 1, 2 or 5 times a power of ten, and at least
/// `min_step`, that needs at most `intervals` intervals. Returns the step and the ticks (the last one at
/// or above `max`).
fn nice_ticks(max: f64, intervals: usize, min_step: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let intervals = intervals.max(1) as f64;
    let mut magnitude = 10f64.powf((max / intervals).log10().floor());
    let step = loop {
        if let Some(step) = [1.0, 2.0, 5.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|step| (max / step).ceil() <= intervals)
        {
            break step;
        }
        magnitude *= 10.0;
    }
    .max(min_step);
    let n = (max / step).ceil() as usize;
    (step, (0..=n).map(|i| step * i as f64).collect())
}

/// A tick's label: as many decimals as the step needs, none for whole steps.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// A panel at `top` plotting `series` (name, colour, values) against `t`, with its y label.
fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    unit: &str,
    t: &[f64],
    series: &[(&str, &str, Vec<f64>)],
) {
    let (t_step, t_ticks) = nice_ticks(t.iter().copied().fold(1.0, f64::max), 10, 1.0);
    let (y_step, y_ticks) = nice_ticks(
        series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0, f64::max),
        6,
        0.0,
    );
    let t_max = t_ticks.last().copied().unwrap_or(1.0);
    let y_max = y_ticks.last().copied().unwrap_or(1.0);
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
    for v in &y_ticks {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text><line x1="{x0}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>"##,
            x0 - 4.0,
            y(*v) + 3.0,
            tick_label(*v, y_step),
            x0 + w,
            y(*v),
            y(*v)
        );
    }
    for v in &t_ticks {
        let _ = write!(
            svg,
            r##"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/><text x="{}" y="{}" font-size="10" text-anchor="middle">{} s</text>"##,
            x(*v),
            x(*v),
            y0 + h,
            y0 + h + 4.0,
            x(*v),
            y0 + h + 15.0,
            tick_label(*v, t_step)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="12" y="{}" font-size="10" transform="rotate(-90 12 {})">{unit}</text>"##,
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
    fn ticks_are_round_and_cover_the_data() {
        // The values the issue saw on a 12 s run: 11195 TPS at most.
        let (step, ticks) = nice_ticks(11195.0, 6, 0.0);
        assert_eq!(step, 2000.0);
        assert_eq!(
            ticks,
            [0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0, 12000.0]
        );
        assert_eq!(
            nice_ticks(12.0, 10, 1.0),
            (2.0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0])
        );
        assert_eq!(nice_ticks(3.7, 6, 0.0).0, 1.0);
        assert_eq!(nice_ticks(0.37, 6, 0.0).0, 0.1);
        assert_eq!(nice_ticks(47.0, 6, 0.0).0, 10.0);
        assert_eq!(
            nice_ticks(0.0, 6, 0.0),
            (0.2, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0])
        );
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(12000.0, 2000.0), "12000");
        // Seconds never tick below 1 s.
        assert_eq!(nice_ticks(3.0, 10, 1.0), (1.0, vec![0.0, 1.0, 2.0, 3.0]));
        for max in [0.013, 0.9, 1.0, 7.5, 99.0, 101.0, 123_456.0, 9e9] {
            let (step, ticks) = nice_ticks(max, 6, 0.0);
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9),
                "{max}: step {step}"
            );
            assert!(
                ticks.len() <= 7 && *ticks.last().unwrap() >= max,
                "{max}: {ticks:?}"
            );
        }
    }

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
        // Round ticks: 0..5000 TPS by 1000, seconds 0..5 by 1 along the time axis.
        for label in [">5000<", ">1000<", ">0 s<", ">5 s<", ">1 s<"] {
            assert!(s.contains(label), "{label}");
        }
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
