"""Everything that looks at pixels: intake, faces, identity, preflight, watermark."""
