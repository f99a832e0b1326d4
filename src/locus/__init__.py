"""Locus: where in the network does fine-tuning write?"""
