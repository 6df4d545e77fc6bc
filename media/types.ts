// The shapes the media pipeline's parts share (kinds, containers, limits,
// what processing makes of a file), declared with the media document in
// models/media.ts and re-exported here for the pipeline's modules.
export {
  CONTAINERS,
  MEDIA_KINDS,
  mediaOutputSchema,
  renditionSchema,
  variantSchema,
  type Container,
  type MediaKind,
  type MediaLimits,
  type MediaOutput,
  type Rendition,
  type Variant,
} from '../models/media.ts';
