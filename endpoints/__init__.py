"""SageMaker models registered in the portal and the endpoints that serve them."""
