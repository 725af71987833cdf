//! Gateway configuration: `mosaic.config.json` plus the environment.
