//! `cargo xtask loadtest --plot`: SVG charts of what `compare` measured,
//! for BENCHMARKS.md (written to `benches/plots/`):
//!
//! - `memory_per_connection.svg`: RSS per connection against the number of
//!   idle connections, per server (`compare --sweep`);
//! - `rtt_vs_load.svg`: the clients' ping round trip, p50 and p99, against
//!   the number of connections, per server (`compare --sweep`);
//! - `detection_latency.svg`: the share of silent and half-open clients
//!   detected after each delay, per server, beside the bound
//!   (`compare`'s detect runs).

use std::{fs, path::Path};

use anyhow::{Context, Result, bail};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

use crate::cmd::project_root;

/// One colour per server, in the order servers appear.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const SIZE: (u32, u32) = (760, 440);

pub(crate) fn run() -> Result<()> {
    let compare = project_root().join("target/compare");
    let out = project_root().join("benches/plots");
    fs::create_dir_all(&out)?;
    let sweep = read(&compare.join("sweep.json"), "cargo xtask compare --sweep")?;
    let results = read(&compare.join("compare.json"), "cargo xtask compare")?;
    memory(&sweep, &out.join("memory_per_connection.svg"))?;
    rtt(&sweep, &out.join("rtt_vs_load.svg"))?;
    detection(&results, &out.join("detection_latency.svg"))?;
    eprintln!("==> wrote {}/*.svg", out.display());
    Ok(())
}

fn read(path: &Path, made_by: &str) -> Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {}; run `{made_by}` first", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The servers in `rows` (each has a "server"), in order of appearance.
fn servers(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        if let Some(name) = row["server"].as_str()
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// `(x, y)` of `server`'s rows, sorted by x.
fn series(rows: &[Value], server: &str, x: &str, y: &[&str]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|row| row["server"] == server)
        .filter_map(|row| {
            let value = y.iter().fold(row, |v, key| &v[*key]).as_f64()?;
            Some((row[x].as_f64()?, value))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn rows(value: &Value) -> Result<&[Value]> {
    match value.as_array() {
        Some(rows) if !rows.is_empty() => Ok(rows),
        _ => bail!("no results to plot"),
    }
}

/// The largest y over all lines, with headroom.
fn ceiling(lines: &[Vec<(f64, f64)>]) -> f64 {
    lines.iter().flatten().map(|&(_, y)| y).fold(0.0, f64::max) * 1.15
}

/// The axes and words of one chart.
struct Axes<'a> {
    caption: String,
    x_desc: &'a str,
    y_desc: &'a str,
    x_max: f64,
    y_max: f64,
    legend: SeriesLabelPosition,
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one chart at `path`: white ground, caption, mesh, what `series`
/// draws, and the legend.
fn draw(
    path: &Path,
    axes: Axes<'_>,
    series: impl FnOnce(&mut Chart<'_, '_>) -> Result<()>,
) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..axes.x_max, 0.0..axes.y_max)?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .draw()?;
    series(&mut chart)?;
    chart
        .configure_series_labels()
        .position(axes.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Server number `index`'s solid line, in its colour, with a legend entry.
fn named_line(
    chart: &mut Chart<'_, '_>,
    index: usize,
    name: &str,
    points: &[(f64, f64)],
) -> Result<()> {
    let colour = colour(index);
    chart
        .draw_series(LineSeries::new(points.to_vec(), colour.stroke_width(2)))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
    Ok(())
}

fn colour(index: usize) -> RGBColor {
    COLOURS[index % COLOURS.len()]
}

/// The largest connection count in `rows`.
fn max_connections(rows: &[Value]) -> f64 {
    rows.iter()
        .filter_map(|r| r["connections"].as_f64())
        .fold(0.0, f64::max)
}

fn memory(sweep: &Value, path: &Path) -> Result<()> {
    let rows = rows(sweep)?;
    let names = servers(rows);
    let lines: Vec<Vec<(f64, f64)>> = names
        .iter()
        .map(|name| series(rows, name, "connections", &["rss_kib_per_conn"]))
        .collect();
    let interval_s = rows[0]["interval_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    let axes = Axes {
        caption: format!("RSS per idle connection (ping every {interval_s} s)"),
        x_desc: "idle connections",
        y_desc: "KiB per connection",
        x_max: max_connections(rows) * 1.05,
        y_max: ceiling(&lines).max(1.0),
        legend: SeriesLabelPosition::MiddleRight,
    };
    draw(path, axes, |chart| {
        for (index, (name, line)) in names.iter().zip(&lines).enumerate() {
            named_line(chart, index, name, line)?;
            let fill = colour(index).filled();
            chart.draw_series(line.iter().map(|&point| Circle::new(point, 3, fill)))?;
        }
        Ok(())
    })
}

fn rtt(sweep: &Value, path: &Path) -> Result<()> {
    let rows = rows(sweep)?;
    let names = servers(rows);
    let p99: Vec<Vec<(f64, f64)>> = names
        .iter()
        .map(|name| series(rows, name, "connections", &["rtt_ms", "p99"]))
        .collect();
    let p50: Vec<Vec<(f64, f64)>> = names
        .iter()
        .map(|name| series(rows, name, "connections", &["rtt_ms", "p50"]))
        .collect();
    let axes = Axes {
        caption: "Client ping round trip vs load: p99 (solid), p50 (dashed)".to_owned(),
        x_desc: "idle connections",
        y_desc: "round trip, ms",
        x_max: max_connections(rows) * 1.05,
        y_max: ceiling(&p99).max(1.0),
        legend: SeriesLabelPosition::MiddleRight,
    };
    draw(path, axes, |chart| {
        for (index, name) in names.iter().enumerate() {
            named_line(chart, index, name, &p99[index])?;
            chart.draw_series(DashedLineSeries::new(
                p50[index].clone(),
                6,
                4,
                colour(index).stroke_width(1),
            ))?;
        }
        Ok(())
    })
}

fn detection(results: &Value, path: &Path) -> Result<()> {
    let rows: Vec<&Value> = rows(results)?
        .iter()
        .filter(|row| row["scenario"] == "detect")
        .collect();
    if rows.is_empty() {
        bail!("no detect results in compare.json; run `cargo xtask compare`");
    }
    let bound_s = rows[0]["bound_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let mut lines = Vec::new();
    for row in &rows {
        let mut detections: Vec<f64> = ["silent", "half-open"]
            .iter()
            .flat_map(|kind| {
                row["loadgen"]["kinds"][*kind]["detections_ms"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|ms| ms.as_f64())
            .map(|ms| ms / 1000.0)
            .collect();
        detections.sort_by(f64::total_cmp);
        let total = row["went_quiet"]
            .as_f64()
            .unwrap_or(detections.len() as f64)
            .max(1.0);
        let cdf: Vec<(f64, f64)> = detections
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, (i + 1) as f64 / total))
            .collect();
        lines.push((row["server"].as_str().unwrap_or("?").to_owned(), cdf));
    }
    let max_x = lines
        .iter()
        .flat_map(|(_, line)| line.iter().map(|&(x, _)| x))
        .fold(bound_s, f64::max)
        * 1.1;
    let axes = Axes {
        caption: "Silent and half-open clients detected (cumulative), bound dashed".to_owned(),
        x_desc: "seconds from the client's last frame to the server closing",
        y_desc: "share detected",
        x_max: max_x,
        y_max: 1.05,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw(path, axes, |chart| {
        chart.draw_series(DashedLineSeries::new(
            vec![(bound_s, 0.0), (bound_s, 1.05)],
            8,
            6,
            BLACK.stroke_width(1),
        ))?;
        for (index, (name, line)) in lines.iter().enumerate() {
            named_line(chart, index, name, line)?;
        }
        Ok(())
    })
}
