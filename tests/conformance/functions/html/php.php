<?php
function handler($event)
{
    return '<h1>hi</h1>';
}
