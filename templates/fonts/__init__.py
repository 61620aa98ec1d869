"""DejaVu Sans (fonts-dejavu-core 2.37), Bitstream Vera licence: see LICENSE-DejaVu.txt."""
