//! Renders a [`Report`]: a text table (every line with its formula), an SVG stacked-bar chart,
//! and a self-contained HTML page holding both.

use std::fmt::Write;

use crate::model::{n, Bill, Category, Report};

fn usd(v: f64) -> String {
    let whole = n(v.round());
    format!("${whole}")
}

fn header(r: &Report) -> Vec<String> {
    let w = &r.workload;
    let a = &r.assumptions;
    let q = &r.ratios;
    vec![
        format!(
            "workload: {} MiB/s produced, read fan-out {}, retention {} days, {} zones, {}",
            n(w.ingest_mibps),
            n(w.fanout),
            n(w.retention_days),
            w.zones,
            w.region
        ),
        format!(
            "prices: {} ({}, dated {}); month = {} h",
            r.prices.source,
            r.prices.region,
            r.prices.source_date,
            n(r.prices.hours_per_month)
        ),
        format!(
            "ratios: {} PUT/GiB [{}], {} GET/GiB [{}], compaction rewrite {} [{}], {} CPU cores per MiB/s [{}]",
            n(q.puts_per_gib.value),
            q.puts_per_gib.source.label(),
            n(q.gets_per_gib.value),
            q.gets_per_gib.source.label(),
            n(q.compaction_rewrite.value),
            q.compaction_rewrite.source.label(),
            n(q.cpu_cores_per_mibps.value),
            q.cpu_cores_per_mibps.source.label()
        ),
        format!(
            "assumptions: WAL objects {} MiB, compacted objects {} MiB, network planned at {} of baseline, agent CPU at {}, Kafka RF {}, EBS filled to at most {}",
            n(a.wal_object_mib),
            n(a.compacted_object_mib),
            n(a.network_utilisation),
            n(a.cpu_utilisation),
            a.kafka_replication_factor,
            n(a.ebs_max_fill)
        ),
        format!("data produced: {}", r.gib_per_month_formula),
    ]
}

fn bills(r: &Report) -> [&Bill; 3] {
    [&r.floe, &r.kafka_fff, &r.kafka_no_fff]
}

/// The text table.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "floe cost: monthly AWS bill");
    for h in header(r) {
        let _ = writeln!(s, "  {h}");
    }
    for b in bills(r) {
        let _ = writeln!(s, "\n{}", b.name);
        for l in &b.lines {
            let _ = writeln!(s, "  {:<46} {:>12}/month", l.item, usd(l.usd_month));
            let _ = writeln!(s, "      = {}", l.formula);
        }
        let _ = writeln!(
            s,
            "  {:<46} {:>12}/month",
            format!("TOTAL {}", b.name),
            usd(b.total())
        );
    }
    let f = r.floe.total();
    let _ = writeln!(s, "\nsummary");
    for b in bills(r) {
        let ratio = if f > 0.0 { b.total() / f } else { f64::NAN };
        let _ = writeln!(
            s,
            "  {:<46} {:>12}/month  ({:.2}× Floe)",
            b.name,
            usd(b.total()),
            ratio
        );
    }
    let _ = writeln!(s, "\nnotes");
    for note in &r.notes {
        let _ = writeln!(s, "  - {note}");
    }
    s
}

fn colour(c: Category) -> &'static str {
    match c {
        Category::Compute => "#4e79a7",
        Category::Storage => "#f28e2b",
        Category::Requests => "#59a14f",
        Category::CrossZone => "#e15759",
        Category::Metadata => "#76b7b2",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A stacked bar per bill, one colour per category.
pub fn svg(r: &Report) -> String {
    let (w, h) = (720.0, 420.0);
    let (left, top, bottom) = (90.0, 50.0, 90.0);
    let plot_h = h - top - bottom;
    let max = bills(r)
        .iter()
        .map(|b| b.total())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="24" font-size="15" font-weight="bold">Monthly AWS bill, {} MiB/s, fan-out {}, {} days, {} zones</text>"#,
        n(r.workload.ingest_mibps),
        n(r.workload.fanout),
        n(r.workload.retention_days),
        r.workload.zones
    );
    // Axis with 5 ticks.
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - 20.0,
            left - 6.0,
            y + 4.0,
            esc(&usd(v))
        );
    }
    let slot = (w - left - 20.0) / 3.0;
    let bar_w = slot * 0.5;
    for (i, b) in bills(r).iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = top + plot_h;
        for c in Category::ALL {
            let v = b.by_category(c);
            if v <= 0.0 {
                continue;
            }
            let bh = plot_h * v / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                colour(c),
                esc(c.label()),
                esc(&usd(v))
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + bar_w / 2.0,
            y - 6.0,
            esc(&usd(b.total())),
            x + bar_w / 2.0,
            top + plot_h + 18.0,
            esc(&b.name)
        );
    }
    for (i, c) in Category::ALL.iter().enumerate() {
        let x = left + 120.0 * i as f64;
        let y = h - 30.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{y}">{}</text>"#,
            y - 10.0,
            colour(*c),
            x + 16.0,
            esc(c.label())
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One HTML page with no external resources: header, chart, every line with its formula.
pub fn html(r: &Report) -> String {
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>floe cost</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;width:100%;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}td.usd{text-align:right;white-space:nowrap}code{font-size:90%}</style></head><body>\n<h1>floe cost: monthly AWS bill</h1>\n<ul>\n");
    for h in header(r) {
        let _ = writeln!(s, "<li>{}</li>", esc(&h));
    }
    s.push_str("</ul>\n");
    s.push_str(&svg(r));
    for b in bills(r) {
        let _ = writeln!(
            s,
            "<h2>{}: {}/month</h2>\n<table><tr><th>item</th><th>$/month</th><th>formula</th></tr>",
            esc(&b.name),
            esc(&usd(b.total()))
        );
        for l in &b.lines {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"usd\">{}</td><td><code>{}</code></td></tr>",
                esc(&l.item),
                esc(&usd(l.usd_month)),
                esc(&l.formula)
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("<h2>Notes</h2><ul>\n");
    for note in &r.notes {
        let _ = writeln!(s, "<li>{}</li>", esc(note));
    }
    s.push_str("</ul></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{compute, Assumptions, Ratios, Workload};
    use crate::prices::Prices;

    fn report() -> Report {
        let w = Workload::default();
        let a = Assumptions::default();
        compute(&w, &a, &Ratios::defaults(&w, &a), &Prices::embedded()).expect("report")
    }

    #[test]
    fn text_prints_every_line_with_its_formula() {
        let r = report();
        let t = text(&r);
        for b in [&r.floe, &r.kafka_fff, &r.kafka_no_fff] {
            for l in &b.lines {
                assert!(t.contains(&l.item), "{}", l.item);
                assert!(t.contains(&format!("= {}", l.formula)), "{}", l.formula);
            }
        }
        assert!(t.contains("TOTAL Floe"));
        assert!(t.contains("$21,603/month"));
        assert!(t.contains("$359,661/month"));
        assert!(t.contains("dated 2025-01-15"));
    }

    #[test]
    fn svg_and_html_are_self_contained() {
        let r = report();
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(
            s.matches("<rect").count() - 1,
            s.matches("</rect>").count() + 5
        );
        let h = html(&r);
        assert!(h.contains("<svg") && h.contains("$359,661"));
        assert!(!h.contains("http://") || h.contains("http://www.w3.org/2000/svg"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
