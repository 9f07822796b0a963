/** The ffmpeg arguments of each transcoding step: the common input options and each output's options. */
import type { X264Preset } from "./transcode-options";
import type { PlannedRendition } from "./video-plan";

export interface VideoEncoding {
  readonly preset: X264Preset;
  readonly crf: number;
  readonly audioBitrateKbps: number;
  readonly frameRate: number | null;
  readonly maxDurationSeconds: number;
}

/** Before the input: quiet, progress on stderr, local files only, the probe's demuxer forced. */
export function ffmpegInputArguments(input: { threads: number; demuxer: string; extra: readonly string[] }): string[] {
  const threads = String(input.threads);
  return [
    "-nostdin",
    // fluent-ffmpeg adds -y only for outputs it takes for files, and not for "file:" URLs.
    "-y",
    "-hide_banner",
    "-loglevel", "error",
    "-nostats",
    "-progress", "pipe:2",
    "-filter_threads", threads,
    "-threads", threads,
    ...input.extra,
    "-protocol_whitelist", "file",
    "-f", input.demuxer,
  ];
}

/** One MP4 rendition: H.264 High yuv420p, AAC stereo (or no audio), no subtitles, data or metadata. */
export function videoRenditionArguments(
  rendition: PlannedRendition,
  threads: number,
  streams: { video: number; audio: number | null },
  settings: VideoEncoding,
): string[] {
  const filters = [`scale=${rendition.width}:${rendition.height}`, "setsar=1"];
  if (settings.frameRate !== null) filters.push(`fps=${settings.frameRate}`);
  filters.push("format=yuv420p");
  return [
    "-map", `0:${streams.video}`,
    ...(streams.audio === null ? [] : ["-map", `0:${streams.audio}`]),
    "-filter:v", filters.join(","),
    "-c:v", "libx264",
    "-preset", settings.preset,
    "-crf", String(settings.crf),
    "-maxrate", `${rendition.maxBitrateKbps}k`,
    "-bufsize", `${rendition.maxBitrateKbps * 2}k`,
    "-profile:v", "high",
    "-pix_fmt", "yuv420p",
    ...(streams.audio === null ? ["-an"] : ["-c:a", "aac", "-b:a", `${settings.audioBitrateKbps}k`, "-ac", "2"]),
    "-sn",
    "-dn",
    "-map_metadata", "-1",
    "-map_chapters", "-1",
    "-threads", String(threads),
    "-movflags", "+faststart",
    "-t", String(settings.maxDurationSeconds),
    "-f", "mp4",
  ];
}

/** One WebP frame of the video stream at the given size. */
export function posterArguments(videoStream: number, size: { width: number; height: number }, quality: number, threads: number): string[] {
  return [
    "-map", `0:${videoStream}`,
    "-frames:v", "1",
    "-filter:v", `scale=${size.width}:${size.height},setsar=1`,
    "-c:v", "libwebp",
    "-quality", String(quality),
    "-an",
    "-sn",
    "-dn",
    "-map_metadata", "-1",
    "-threads", String(threads),
    "-f", "webp",
  ];
}

/** AAC in M4A, with only the cleaned title, artist and album of the source's tags. */
export function audioM4aArguments(
  audioStream: number,
  encoding: { bitrateKbps: number; channels: number; maxDurationSeconds: number; threads: number },
  tags: { title: string | null; artist: string | null; album: string | null },
): string[] {
  const metadata: string[] = [];
  if (tags.title !== null) metadata.push("-metadata", `title=${tags.title}`);
  if (tags.artist !== null) metadata.push("-metadata", `artist=${tags.artist}`);
  if (tags.album !== null) metadata.push("-metadata", `album=${tags.album}`);
  return [
    "-map", `0:${audioStream}`,
    "-vn",
    "-sn",
    "-dn",
    "-c:a", "aac",
    "-b:a", `${encoding.bitrateKbps}k`,
    "-ac", String(encoding.channels),
    "-map_metadata", "-1",
    "-map_chapters", "-1",
    ...metadata,
    "-threads", String(encoding.threads),
    "-movflags", "+faststart",
    "-t", String(encoding.maxDurationSeconds),
    "-f", "ipod",
  ];
}

/** Raw mono 16-bit PCM at a low rate, for the waveform's peaks. */
export function waveformPcmArguments(audioStream: number, sampleRate: number, maxDurationSeconds: number): string[] {
  return [
    "-map", `0:${audioStream}`,
    "-vn",
    "-ac", "1",
    "-ar", String(sampleRate),
    "-c:a", "pcm_s16le",
    "-t", String(maxDurationSeconds),
    "-f", "s16le",
  ];
}

/** The embedded cover picture: copied as stored, or re-encoded to PNG. */
export function coverArtArguments(pictureStream: number, reencodeToPng: boolean): string[] {
  return [
    "-map", `0:${pictureStream}`,
    ...(reencodeToPng ? ["-c:v", "png"] : ["-c:v", "copy"]),
    "-frames:v", "1",
    "-an",
    "-map_metadata", "-1",
    "-update", "1",
    "-f", "image2",
  ];
}
