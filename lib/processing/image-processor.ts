import path from "node:path";
import type { FailureReason } from "../jobs/job-state";
import { ProcessingError } from "../jobs/processor";
import type { Processor } from "../jobs/processor";
import { configureSharp, ImageProcessingError, processImage } from "./images";

const REASONS: Readonly<Record<ImageProcessingError["reason"], FailureReason>> = {
  pixel_limit: "too_many_pixels",
  too_many_frames: "too_many_pixels",
  unsupported_format: "unsupported_format",
  corrupt_image: "corrupt",
};

/** The image worker's processor: sharp variants (thumb, display, display-jpeg) and a placeholder. */
export function imageProcessor(options: { limitInputPixels: number }): Processor {
  // The worker already runs one job per core: one libvips thread each keeps the machine from oversubscribing.
  configureSharp({ threadsPerImage: 1 });
  return async (_job, context) => {
    const original = await context.downloadOriginal();
    let result;
    try {
      result = await processImage({ path: original }, path.join(context.workDir, "variants"), {
        limitInputPixels: options.limitInputPixels,
        onProgress: (percent) => context.reportProgress("processing", percent),
      });
    } catch (error) {
      if (error instanceof ImageProcessingError) {
        throw new ProcessingError(REASONS[error.reason], error.message, { permanent: true, cause: error });
      }
      throw error;
    }
    await context.saveVariants(
      result.variants.map((variant) => ({
        name: variant.name,
        path: variant.path,
        mime: variant.mime,
        extension: variant.extension,
        width: variant.width,
        height: variant.height,
      })),
    );
    return { width: result.width, height: result.height, placeholder: result.placeholder };
  };
}
