/** Small hand-written SVG charts for the bench report: latency CDFs and TPS over time. */
export { renderLineChart, type LineChart } from './line-chart.js';
export { linearTicks, logTicks, tickLabel } from './ticks.js';
