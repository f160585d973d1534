"""Adapters: the ports implemented on Azure Table Storage, the ACS REST API and the Functions runtime."""
