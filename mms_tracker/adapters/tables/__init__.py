"""The tracking store on Azure Table Storage (azure-data-tables, async)."""
