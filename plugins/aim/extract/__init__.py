"""Extractors: read a source system in bounded memory and yield rows chunk by chunk."""
