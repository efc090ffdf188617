"""Stage 2, elaboration: imports (`loader`), compile-time evaluation (`evaluate`), which block
specializations exist (`resolve`), and the IR graph of each one (`block_builder`)."""
