"""The xDS service: ADS/SDS servers (later) over the pure config generator in `generator/`."""
