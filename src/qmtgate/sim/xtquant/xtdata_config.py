"""xtquant.xtdata_config: the client GUID the SDK sends when it connects (empty, as shipped)."""

client_guid = ""
