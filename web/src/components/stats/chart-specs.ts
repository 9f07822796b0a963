import type { Unit } from "../../stats-api";

/** One chart of the dashboard: its metrics (one line each) and what it shows, in plain words. */
export interface ChartSpec {
  readonly id: string;
  /** The heading; `per` is the bucket in words ("day", "6 hours"). */
  readonly title: (per: string) => string;
  /** One sentence a reader with no technical background understands. */
  readonly sentence: (per: string) => string;
  /** What will appear here once there are numbers. */
  readonly empty: string;
  readonly unit: Unit;
  readonly lines: readonly { readonly metric: string; readonly name: string }[];
}

/** Line colours, in the order of a chart's lines; the legend's swatches use the same (styles in stats.css). */
export const PALETTE = ["#0b6e99", "#c2410c", "#7c3aed", "#15803d"] as const;

const KINDS = [
  { kind: "image", name: "Pictures" },
  { kind: "video", name: "Videos" },
  { kind: "audio", name: "Sound" },
] as const;

export const DASHBOARD_CHARTS: readonly ChartSpec[] = [
  {
    id: "members",
    title: () => "Members",
    sentence: (per) => `How many members the site had at the end of each ${per}.`,
    empty: "The number of members will appear here after the first snapshot.",
    unit: "count",
    lines: [{ metric: "users_total", name: "Members" }],
  },
  {
    id: "new-members",
    title: (per) => `New members per ${per}`,
    sentence: (per) => `How many people created an account in each ${per}.`,
    empty: "New sign-ups will appear here once people create accounts.",
    unit: "count",
    lines: [{ metric: "users_new", name: "New members" }],
  },
  {
    id: "active-members",
    title: () => "Active members",
    sentence: () => "How many members used the site in the last day, the last week and the last month.",
    empty: "Active members will appear here once people sign in.",
    unit: "count",
    lines: [
      { metric: "users_active_daily", name: "In a day" },
      { metric: "users_active_weekly", name: "In a week" },
      { metric: "users_active_monthly", name: "In a month" },
    ],
  },
  {
    id: "uploads",
    title: (per) => `Uploads per ${per}`,
    sentence: (per) => `How many pictures, videos and sound files people uploaded in each ${per}.`,
    empty: "Uploads will appear here once people share pictures, videos or sound.",
    unit: "count",
    lines: KINDS.map(({ kind, name }) => ({ metric: `uploads_${kind}`, name })),
  },
  {
    id: "storage",
    title: () => "Storage used",
    sentence: () => "How much space the uploaded pictures, videos and sound files take up.",
    empty: "The space taken by uploads will appear here after the first snapshot.",
    unit: "bytes",
    lines: KINDS.map(({ kind, name }) => ({ metric: `bytes_${kind}`, name })),
  },
  {
    id: "views",
    title: (per) => `Views per ${per}`,
    sentence: (per) => `How many times items were opened in each ${per}, and by how many different people.`,
    empty: "Views will appear here once people open each other's items.",
    unit: "count",
    lines: [
      { metric: "views", name: "Views" },
      { metric: "unique_viewers", name: "Different viewers" },
    ],
  },
  {
    id: "failures",
    title: (per) => `Failed uploads per ${per}`,
    sentence: (per) => `How many uploads could not be made ready to show in each ${per}.`,
    empty: "Uploads that could not be processed will be counted here.",
    unit: "count",
    lines: [{ metric: "failures", name: "Failed uploads" }],
  },
  {
    id: "processing-typical",
    title: () => "Typical processing time",
    sentence: () => "How long a typical upload waited before it was ready to show (half of them were quicker).",
    empty: "Processing times will appear here once uploads have been processed.",
    unit: "seconds",
    lines: KINDS.map(({ kind, name }) => ({ metric: `processing_p50_${kind}`, name })),
  },
  {
    id: "processing-slow",
    title: () => "Slow processing time",
    sentence: () => "How long the slowest uploads waited before they were ready (one in twenty took longer).",
    empty: "Processing times will appear here once uploads have been processed.",
    unit: "seconds",
    lines: KINDS.map(({ kind, name }) => ({ metric: `processing_p95_${kind}`, name })),
  },
  {
    id: "queue",
    title: () => "Uploads waiting",
    sentence: () => "How many uploads were waiting to be processed when each snapshot was taken.",
    empty: "The number of waiting uploads will appear here after the first snapshot.",
    unit: "count",
    lines: [{ metric: "queue_depth", name: "Waiting" }],
  },
  {
    id: "cache",
    title: () => "Answered from memory",
    sentence: () => "The share of requests answered from fast memory rather than the database; higher is better.",
    empty: "The share of quick answers will appear here after the first snapshot.",
    unit: "ratio",
    lines: [{ metric: "cache_hit_ratio", name: "Share" }],
  },
  {
    id: "replica-lag",
    title: () => "Database copy delay",
    sentence: () => "How many seconds the slowest copy of the database was behind the main one.",
    empty: "The delay of the database copies will appear here after the first snapshot.",
    unit: "seconds",
    lines: [{ metric: "replica_lag_max_seconds", name: "Delay" }],
  },
];
