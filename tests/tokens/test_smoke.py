def test_landing_page_shows_the_demo_curl(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert b"/api/chat/tokens" in response.content
