import { useState } from "preact/hooks";
import { RANGE_PRESETS } from "../../stats-api";
import type { StatsRange } from "../../stats-api";

interface Props {
  readonly range: StatsRange;
  readonly onChange: (range: StatsRange) => void;
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

function nextDay(date: string): string {
  const next = new Date(`${date}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString();
}

/** The span the figures cover: one of the presets, or custom dates (both days included). */
export function RangePicker({ range, onChange }: Props) {
  const custom = !("preset" in range);
  const [showCustom, setShowCustom] = useState(custom);
  const [from, setFrom] = useState(custom ? day(range.from) : "");
  const [to, setTo] = useState(custom ? day(new Date(Date.parse(range.to) - 1).toISOString()) : "");
  const [problem, setProblem] = useState<string | undefined>();

  function applyCustom(event: Event) {
    event.preventDefault();
    if (!from || !to) return setProblem("Choose both the first and the last day.");
    if (from > to) return setProblem("The first day must come before the last day.");
    setProblem(undefined);
    onChange({ from: `${from}T00:00:00.000Z`, to: nextDay(to) });
  }

  return (
    <form class="range-picker" onSubmit={applyCustom}>
      <fieldset>
        <legend>Period</legend>
        <div class="range-options">
          {RANGE_PRESETS.map((preset) => (
            <label key={preset.value} class="range-option">
              <input type="radio" name="range" value={preset.value}
                checked={!showCustom && "preset" in range && range.preset === preset.value}
                onChange={() => {
                  setShowCustom(false);
                  onChange({ preset: preset.value });
                }} />
              {preset.label}
            </label>
          ))}
          <label class="range-option">
            <input type="radio" name="range" value="custom" checked={showCustom} onChange={() => setShowCustom(true)} />
            Choose dates
          </label>
        </div>
        {showCustom && (
          <div class="range-custom">
            <label>First day <input type="date" value={from} onInput={(event) => setFrom(event.currentTarget.value)} /></label>
            <label>Last day <input type="date" value={to} onInput={(event) => setTo(event.currentTarget.value)} /></label>
            <button type="submit" class="primary">Show</button>
            {problem && <p class="error" role="alert">{problem}</p>}
          </div>
        )}
      </fieldset>
    </form>
  );
}
