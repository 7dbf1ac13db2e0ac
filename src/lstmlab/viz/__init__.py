"""Pictures of what recurrent networks do: cell and gate traces, plots, HTML reports."""
