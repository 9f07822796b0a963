import { useEffect, useRef, useState } from "preact/hooks";

/** The audio's waveform drawn from its peaks (0..1), with the played part highlighted; click or arrow keys to seek. */
export function Waveform({ url, audio }: { url: string; audio: HTMLAudioElement | null }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [peaks, setPeaks] = useState<number[] | undefined>();
  const [failed, setFailed] = useState(false);
  const [position, setPosition] = useState(0);

  useEffect(() => {
    let cancelled = false;
    fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? (response.json() as Promise<{ peaks?: number[] }>) : Promise.reject(new Error(String(response.status)))))
      .then((data) => !cancelled && setPeaks(Array.isArray(data.peaks) ? data.peaks : []))
      .catch(() => !cancelled && setFailed(true));
    return () => {
      cancelled = true;
    };
  }, [url]);

  useEffect(() => {
    if (!audio) return undefined;
    const update = () => setPosition(audio.duration ? audio.currentTime / audio.duration : 0);
    audio.addEventListener("timeupdate", update);
    audio.addEventListener("seeked", update);
    return () => {
      audio.removeEventListener("timeupdate", update);
      audio.removeEventListener("seeked", update);
    };
  }, [audio]);

  useEffect(() => {
    const element = canvas.current;
    if (!element || !peaks) return undefined;
    const draw = () => {
      const ratio = window.devicePixelRatio || 1;
      const width = element.clientWidth * ratio;
      const height = element.clientHeight * ratio;
      if (!width || !height) return;
      element.width = width;
      element.height = height;
      const context = element.getContext("2d");
      if (!context) return;
      const styles = getComputedStyle(element);
      const played = styles.getPropertyValue("--wave-played").trim() || "#0b6e99";
      const rest = styles.getPropertyValue("--wave-rest").trim() || "#9bb";
      context.clearRect(0, 0, width, height);
      const bar = width / peaks.length;
      const middle = height / 2;
      peaks.forEach((peak, index) => {
        const x = index * bar;
        const half = Math.max(ratio, Math.min(1, peak) * middle * 0.95);
        context.fillStyle = index / peaks.length <= position ? played : rest;
        context.fillRect(x, middle - half, Math.max(1, bar - ratio * 0.5), half * 2);
      });
    };
    draw();
    window.addEventListener("resize", draw);
    return () => window.removeEventListener("resize", draw);
  }, [peaks, position]);

  function seekTo(fraction: number) {
    if (!audio || !Number.isFinite(audio.duration)) return;
    audio.currentTime = Math.max(0, Math.min(1, fraction)) * audio.duration;
  }

  if (failed) return <p class="hint">The waveform could not be loaded.</p>;
  return (
    <canvas
      ref={canvas}
      class="waveform"
      role="slider"
      tabIndex={0}
      aria-label="Seek in the recording"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(position * 100)}
      onClick={(event) => {
        const box = event.currentTarget.getBoundingClientRect();
        seekTo((event.clientX - box.left) / box.width);
      }}
      onKeyDown={(event) => {
        if (!audio || !audio.duration) return;
        const step = 5 / audio.duration;
        if (event.key === "ArrowRight") seekTo(position + step);
        else if (event.key === "ArrowLeft") seekTo(position - step);
        else if (event.key === "Home") seekTo(0);
        else if (event.key === "End") seekTo(1);
        else return;
        event.preventDefault();
      }}
    />
  );
}
