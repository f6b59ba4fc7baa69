from tests.factories import make_participant, make_staff


def test_participant_signs_in_and_sees_home(app, client, auth):
    """It lets a participant with an account sign in with their study code."""
    with app.app_context():
        make_participant(code="T-0042")
    response = auth.login("T-0042", follow=True)
    assert response.status_code == 200
    assert b"Hello, Quiet Harbour" in response.data


def test_admin_signs_in_with_second_step(app, client, auth):
    with app.app_context():
        make_staff("admin")
    response = auth.login("admin@example.org", follow=True)
    assert response.status_code == 200
    assert b"Users" in response.data
