from celery import shared_task

from alerts import delivery


@shared_task(ignore_result=True)
def send_alert(pk: int) -> bool:
    return delivery.deliver(pk)


@shared_task(ignore_result=True)
def send_due_alerts() -> int:
    """Beat's sweep: alerts whose message was lost, and failed ones whose back-off is over."""
    return delivery.deliver_due()
