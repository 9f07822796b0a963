/**
 * Waveform peaks for the audio player: the loudest absolute sample in each of `points` equal slices
 * of the track, as numbers in 0..1 (1 = full scale; not normalised to the loudest peak, so a quiet
 * recording looks quiet).
 *
 * ffmpeg decodes the track to mono 16-bit little-endian PCM in a scratch file (in the same run as
 * the AAC encode, so the track is decoded once); the file is then read as a stream, so memory stays
 * small however long the track. The slice boundaries come from the file's sample count, so the
 * result has exactly `points` values whatever the container claimed the duration was.
 */
import fs from "node:fs";

export const WAVEFORM_POINTS = 800;

/** The JSON document stored next to the audio (`waveform.json`). */
export interface WaveformDocument {
  readonly version: 1;
  readonly points: number;
  /** Rate of the PCM the peaks were taken from. */
  readonly sampleRate: number;
  readonly durationSeconds: number;
  /** `points` numbers in 0..1, rounded to 4 decimals. */
  readonly peaks: readonly number[];
}

/**
 * The PCM rate to decode at: at least 64 samples per point so short clips keep their transients,
 * between 8 kHz (enough for a picture of loudness, and 30 minutes is then 29 MB of scratch) and
 * 48 kHz.
 */
export function waveformSampleRate(durationSeconds: number, points = WAVEFORM_POINTS): number {
  if (!Number.isFinite(durationSeconds) || durationSeconds <= 0) return 48000;
  return Math.min(48000, Math.max(8000, Math.ceil((points * 64) / durationSeconds)));
}

/** Collects peaks from signed 16-bit samples fed in order; pure. */
export class PeakAccumulator {
  private readonly peaks: Float64Array;
  private readonly filled: Uint8Array;
  private seen = 0;

  constructor(
    /** How many samples will be fed in total (from the PCM file's size). */
    readonly totalSamples: number,
    readonly points = WAVEFORM_POINTS,
  ) {
    if (!Number.isInteger(points) || points < 1) throw new RangeError(`points must be a positive integer, not ${points}`);
    if (!Number.isInteger(totalSamples) || totalSamples < 0) throw new RangeError(`totalSamples must be a whole number, not ${totalSamples}`);
    this.peaks = new Float64Array(points);
    this.filled = new Uint8Array(points);
  }

  /** Feeds samples (-32768..32767). Samples beyond `totalSamples` are ignored. */
  add(samples: ArrayLike<number>): void {
    const { totalSamples, points } = this;
    for (let i = 0; i < samples.length && this.seen < totalSamples; i++, this.seen++) {
      const bucket = Math.min(points - 1, Math.floor((this.seen * points) / totalSamples));
      const magnitude = Math.min(1, Math.abs(samples[i]!) / 32768);
      if (magnitude > this.peaks[bucket]!) this.peaks[bucket] = magnitude;
      this.filled[bucket] = 1;
    }
  }

  /**
   * `points` peaks in 0..1. With fewer samples than points some slices get no sample of their own;
   * they repeat the slice before (so a very short sound still draws as a shape, not a comb).
   */
  result(): number[] {
    const out: number[] = [];
    let previous = 0;
    for (let i = 0; i < this.points; i++) {
      const value = this.filled[i] ? this.peaks[i]! : previous;
      out.push(Math.round(value * 10000) / 10000);
      previous = value;
    }
    return out;
  }
}

/** Peaks of a file of mono signed 16-bit little-endian PCM, read as a stream. */
export async function peaksFromPcmFile(pcmPath: string, points = WAVEFORM_POINTS): Promise<number[]> {
  const { size } = await fs.promises.stat(pcmPath);
  const accumulator = new PeakAccumulator(Math.floor(size / 2), points);
  let carry: Buffer | null = null;
  for await (const chunk of fs.createReadStream(pcmPath, { highWaterMark: 256 * 1024 })) {
    let bytes = chunk as Buffer;
    if (carry !== null) {
      bytes = Buffer.concat([carry, bytes]);
      carry = null;
    }
    const whole = bytes.length - (bytes.length % 2);
    if (whole < bytes.length) carry = bytes.subarray(whole);
    const samples = new Int16Array(whole / 2);
    for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
    accumulator.add(samples);
  }
  return accumulator.result();
}

export async function writeWaveformJson(jsonPath: string, document: WaveformDocument): Promise<void> {
  await fs.promises.writeFile(jsonPath, JSON.stringify(document));
}
