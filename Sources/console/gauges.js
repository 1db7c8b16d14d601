// Hand-written gauge (SVG) and strip chart (canvas) for the console: no libraries.

const SVG = "http://www.w3.org/2000/svg";

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/** A vertical bar: 0 µm at the top (the cartridge tip), deeper downwards, as the needle goes. */
export class Gauge {
  constructor(svg) {
    this.svg = svg;
    this.top = 20; this.bottom = 400; this.left = 62; this.width = 70;
    this.maximum = 2000;
    this.marks = null;
    this.bar = null;
    this.needle = null;
    this.draw();
  }

  y(um) { return this.top + (this.bottom - this.top) * Math.min(1, Math.max(0, um / this.maximum)); }

  scale(marks) {
    this.marks = marks;
    this.maximum = Math.max(marks.ceiling || 0, marks.zone || 0, marks.trip || 0, marks.band[1]) * 1.15 || 2000;
    this.draw();
  }

  draw() {
    const svg = this.svg;
    svg.textContent = "";
    svg.append(element("rect", { x: this.left, y: this.top, width: this.width, height: this.bottom - this.top, fill: "#eef0f3", stroke: "#14171c", "stroke-width": 2 }));
    for (let um = 0; um <= this.maximum; um += 500) {
      const y = this.y(um);
      svg.append(element("line", { x1: this.left - 8, x2: this.left, y1: y, y2: y, stroke: "#14171c" }));
      const label = element("text", { x: this.left - 12, y: y + 7, "text-anchor": "end", "font-size": 20, fill: "#14171c" });
      label.textContent = String(um);
      svg.append(label);
    }
    const m = this.marks;
    if (m) {
      const [low, high] = m.band;
      svg.append(element("rect", { x: this.left, y: this.y(low), width: this.width, height: Math.max(2, this.y(high) - this.y(low)), fill: "#2e7d32", "fill-opacity": 0.35 }));
      // The band's edges as solid lines: the fill alone is too faint to see on the gauge's grey.
      for (const edge of [low, high]) svg.append(element("line", { x1: this.left, x2: this.left + this.width, y1: this.y(edge), y2: this.y(edge), stroke: "#2e7d32", "stroke-width": 2 }));
      this.labels = [];
      this.line(m.ceiling, "#000000", "ceiling", 3, null);
      this.line(m.zone, "#6a1b9a", "zone", 3, "6 4");
      this.line(m.trip, "#c62828", "trip", 3, null);
    }
    this.bar = element("rect", { x: this.left + 26, y: this.top, width: this.width - 52, height: 0, fill: "#0b4fa8" });
    this.needle = element("line", { x1: this.left - 4, x2: this.left + this.width + 4, y1: this.top, y2: this.top, stroke: "#0b4fa8", "stroke-width": 4 });
    svg.append(this.bar, this.needle);
    if (this.last !== undefined) this.value(this.last);
  }

  line(um, colour, word, width, dash) {
    if (!um) return;
    const y = this.y(um);
    const attributes = { x1: this.left, x2: this.left + this.width + 12, y1: y, y2: y, stroke: colour, "stroke-width": width };
    if (dash) attributes["stroke-dasharray"] = dash;
    this.svg.append(element("line", attributes));
    // Labels that would overlap (a zone maximum equal to the ceiling) stack downwards.
    let labelY = y + 7;
    while ((this.labels || []).some((other) => Math.abs(other - labelY) < 20)) labelY += 20;
    (this.labels || (this.labels = [])).push(labelY);
    const label = element("text", { x: this.left + this.width + 10, y: labelY, "font-size": 18, fill: colour });
    label.textContent = word;
    this.svg.append(label);
  }

  value(um) {
    this.last = um;
    const y = um === null ? this.top : this.y(um);
    this.bar.setAttribute("height", String(y - this.top));
    this.needle.setAttribute("y1", String(y));
    this.needle.setAttribute("y2", String(y));
  }
}

/** The last 60 s of protrusion and stroke rate; points are kept with the page's own clock. */
export class StripChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];
    this.depthMax = 2000;
    this.rateMax = 200;
    this.span = 60000;
  }

  scale(depthMax, rateMax) {
    this.depthMax = depthMax * 1.15;
    this.rateMax = rateMax * 1.15;
  }

  push(time, depth, rate) {
    this.points.push({ time, depth, rate });
    while (this.points.length && this.points[0].time < time - this.span) this.points.shift();
  }

  draw(now) {
    const canvas = this.canvas;
    const context = canvas.getContext("2d");
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    context.strokeStyle = "#c3c8d1";
    context.lineWidth = 1;
    for (let s = 0; s <= 60; s += 10) {
      const x = width - (s * 1000 / this.span) * width;
      context.beginPath(); context.moveTo(x, 0); context.lineTo(x, height); context.stroke();
    }
    this.trace(context, now, "depth", this.depthMax, "#0b4fa8", []);
    this.trace(context, now, "rate", this.rateMax, "#14171c", [8, 6]);
  }

  trace(context, now, key, maximum, colour, dash) {
    const { width, height } = this.canvas;
    context.strokeStyle = colour;
    context.lineWidth = 3;
    context.setLineDash(dash);
    context.beginPath();
    let drawing = false;
    for (const point of this.points) {
      const value = point[key];
      if (value === null || value === undefined) { drawing = false; continue; }
      const x = width - ((now - point.time) / this.span) * width;
      const y = height - (value / maximum) * height;
      if (drawing) context.lineTo(x, y); else context.moveTo(x, y);
      drawing = true;
    }
    context.stroke();
    context.setLineDash([]);
  }
}
