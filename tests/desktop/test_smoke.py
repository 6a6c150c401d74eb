from PySide6.QtCore import Qt


def test_smoke(open_window, cli, qtbot):
    assert cli("new", "Groceries").code == 0
    window = open_window()
    qtbot.waitUntil(lambda: window.controller.current_title == "Groceries")
    qtbot.keyClicks(window.quick_add, "6 eggs")
    qtbot.keyClick(window.quick_add, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.controller.items_model.find("Eggs") is not None)
    print(cli("--json", "show", "Groceries").stdout)
