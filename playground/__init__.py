"""The playground: invoke an endpoint by target name and see, compare and keep the answers."""
