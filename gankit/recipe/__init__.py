"""Recipes: the YAML files that say everything a run does."""

from gankit.recipe.load import load_recipe, resolved, validate
from gankit.recipe.schema import Recipe

__all__ = ["Recipe", "load_recipe", "resolved", "validate"]
